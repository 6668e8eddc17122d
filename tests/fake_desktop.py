"""A desktop session for the tray app's end-to-end test, on a private D-Bus
session bus: the two desktop services a tray app talks to, written to their
freedesktop specifications, plus a client for the app's own tray item.

* ``org.freedesktop.Notifications``: records every ``Notify`` call and can
  send ``ActionInvoked`` (a user clicking the notification).
* ``org.kde.StatusNotifierWatcher``: records tray items that register.
* A client that reads a registered item's properties and its
  ``com.canonical.dbusmenu`` menu and clicks menu items.

Everything runs on one asyncio loop in a background thread (dbus-fast);
the test calls the blocking wrappers. No annotations import from
__future__ here: dbus-fast reads the D-Bus signatures from them."""

import asyncio
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dbus_fast import BusType, Message, MessageType, Variant  # noqa: F401 - BusType for readers
from dbus_fast.aio import MessageBus
from dbus_fast.constants import PropertyAccess
from dbus_fast.service import ServiceInterface, dbus_property, method, signal as dbus_signal

NOTIFICATIONS = "org.freedesktop.Notifications"
WATCHER = "org.kde.StatusNotifierWatcher"
ITEM_IFACE = "org.kde.StatusNotifierItem"
MENU_IFACE = "com.canonical.dbusmenu"
PROPS = "org.freedesktop.DBus.Properties"

# A bus that only this test uses: no service activation, so nothing but the
# fakes below can answer for the desktop services.
BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"""


@dataclass
class Notification:
    id: int
    app_name: str
    summary: str
    body: str
    actions: list[str]
    hints: dict[str, Any] = field(default_factory=dict)


class NotificationServer(ServiceInterface):
    """The Desktop Notifications Specification, version 1.2, as a recorder."""

    def __init__(self) -> None:
        super().__init__(NOTIFICATIONS)
        self.received: list[Notification] = []
        self.closed: list[int] = []
        self._next = 1

    @method()
    def GetCapabilities(self) -> "as":  # noqa: N802, F821
        return ["actions", "body"]

    @method()
    def Notify(self, app_name: "s", replaces_id: "u", app_icon: "s", summary: "s",  # noqa: N802, F821
               body: "s", actions: "as", hints: "a{sv}", expire_timeout: "i") -> "u":  # noqa: F821
        nid = replaces_id or self._next
        self._next = max(self._next, nid) + 1
        self.received.append(Notification(nid, app_name, summary, body, list(actions),
                                          {k: v.value for k, v in hints.items()}))
        return nid

    @method()
    def CloseNotification(self, id: "u") -> None:  # noqa: N802, A002, F821
        self.closed.append(id)
        self.NotificationClosed(id, 3)

    @method()
    def GetServerInformation(self) -> "ssss":  # noqa: N802, F821
        return ["fake-notifications", "metaclaw-tests", "1.0", "1.2"]

    @dbus_signal()
    def ActionInvoked(self, id: "u", action_key: "s") -> "us":  # noqa: N802, A002, F821
        return [id, action_key]

    @dbus_signal()
    def NotificationClosed(self, id: "u", reason: "u") -> "uu":  # noqa: N802, A002, F821
        return [id, reason]


class Watcher(ServiceInterface):
    """The StatusNotifierWatcher of the StatusNotifierItem specification
    (what a panel runs); it says a host is present, as KDE's and GNOME's
    watchers always do."""

    def __init__(self) -> None:
        super().__init__(WATCHER)
        self.items: list[str] = []
        # (sender, service) of every registration: an item may register by
        # bus name or by object path (then the sender is its bus name).
        self.registrations: list[tuple[str, str]] = []

    @method()
    def RegisterStatusNotifierItem(self, service: "s") -> None:  # noqa: N802, F821
        if service not in self.items:
            self.items.append(service)
            self.StatusNotifierItemRegistered(service)

    @method()
    def RegisterStatusNotifierHost(self, service: "s") -> None:  # noqa: N802, F821
        pass

    @dbus_property(access=PropertyAccess.READ)
    def RegisteredStatusNotifierItems(self) -> "as":  # noqa: N802, F821
        return list(self.items)

    @dbus_property(access=PropertyAccess.READ)
    def IsStatusNotifierHostRegistered(self) -> "b":  # noqa: N802, F821
        return True

    @dbus_property(access=PropertyAccess.READ)
    def ProtocolVersion(self) -> "i":  # noqa: N802, F821
        return 0

    @dbus_signal()
    def StatusNotifierItemRegistered(self, service: "s") -> "s":  # noqa: N802, F821
        return service

    @dbus_signal()
    def StatusNotifierItemUnregistered(self, service: "s") -> "s":  # noqa: N802, F821
        return service

    @dbus_signal()
    def StatusNotifierHostRegistered(self) -> None:  # noqa: N802
        return None


@dataclass
class MenuItem:
    id: int
    label: str
    enabled: bool
    toggle_state: int | None
    children: list["MenuItem"]

    def walk(self):
        yield self
        for child in self.children:
            yield from child.walk()


class Desktop:
    """A private session bus with the fake services on it."""

    def __init__(self) -> None:
        for tool, package in (("dbus-daemon", "dbus"),):
            if shutil.which(tool) is None:
                raise RuntimeError(f"{tool} is not installed: install the {package} package (.ci/run does)")
        self.dir = Path(tempfile.mkdtemp(prefix="metaclaw-dbus-"))
        self.socket = self.dir / "bus"
        config = self.dir / "bus.conf"
        config.write_text(BUS_CONFIG.format(socket=self.socket))
        self.daemon = subprocess.Popen(["dbus-daemon", f"--config-file={config}", "--nofork", "--nopidfile"],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not self.socket.exists():
            if self.daemon.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"dbus-daemon did not start (exit {self.daemon.poll()})")
            time.sleep(0.02)
        self.address = f"unix:path={self.socket}"
        self.notifications = NotificationServer()
        self.watcher = Watcher()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="fake-desktop", daemon=True)
        self.thread.start()
        self.bus: MessageBus = self._run(self._connect())

    def _run(self, coro, timeout: float = 10.0):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    async def _connect(self) -> MessageBus:
        bus = await MessageBus(bus_address=self.address).connect()

        def note_sender(msg: Message):
            if msg.message_type == MessageType.METHOD_CALL and msg.member == "RegisterStatusNotifierItem":
                self.watcher.registrations.append((msg.sender, msg.body[0]))
            return None  # not handled here: the interface answers

        bus.add_message_handler(note_sender)
        bus.export("/org/freedesktop/Notifications", self.notifications)
        bus.export("/StatusNotifierWatcher", self.watcher)
        await bus.request_name(NOTIFICATIONS)
        await bus.request_name(WATCHER)
        return bus

    # ------------------------------------------------------------- notifications
    def invoke_action(self, notification_id: int, action: str = "default") -> None:
        """What a notification daemon sends when the user clicks."""
        self.loop.call_soon_threadsafe(self.notifications.ActionInvoked, notification_id, action)

    # ------------------------------------------------------------- tray items
    def item(self) -> tuple[str, str]:
        """(bus name, object path) of the newest registered tray item."""
        sender, service = self.watcher.registrations[-1]
        if service.startswith("/"):
            return sender, service
        return service, "/StatusNotifierItem"

    async def _call(self, destination: str, path: str, interface: str, member: str,
                    signature: str = "", body: list | None = None) -> list:
        reply = await self.bus.call(Message(destination=destination, path=path, interface=interface,
                                            member=member, signature=signature, body=body or []))
        if reply.message_type == MessageType.ERROR:
            raise RuntimeError(f"{interface}.{member} failed: {reply.error_name}: {reply.body}")
        return reply.body

    def item_property(self, name: str) -> Any:
        dest, path = self.item()
        body = self._run(self._call(dest, path, PROPS, "Get", "ss", [ITEM_IFACE, name]))
        return body[0].value

    def menu(self) -> MenuItem:
        """The tray item's whole menu (com.canonical.dbusmenu GetLayout)."""
        dest, _ = self.item()
        menu_path = self.item_property("Menu")
        _, layout = self._run(self._call(dest, menu_path, MENU_IFACE, "GetLayout", "iias", [0, -1, []]))
        return _menu_item(layout)

    def click(self, label: str) -> None:
        """Clicks the menu item labelled ``label`` (as a panel does)."""
        dest, _ = self.item()
        menu_path = self.item_property("Menu")
        target = next((i for i in self.menu().walk() if i.label == label), None)
        if target is None:
            raise AssertionError(f"no menu item labelled {label!r}: {[i.label for i in self.menu().walk()]}")
        self._run(self._call(dest, menu_path, MENU_IFACE, "Event", "isvu",
                             [target.id, "clicked", Variant("i", 0), int(time.time()) & 0xFFFFFFFF]))

    def close(self) -> None:
        try:
            self._run(self._disconnect(), timeout=5)
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(5)
        except Exception:  # noqa: BLE001 - closing what may be half gone
            pass
        finally:
            self.daemon.send_signal(signal.SIGTERM)
            try:
                self.daemon.wait(5)
            except subprocess.TimeoutExpired:
                self.daemon.kill()
                self.daemon.wait(5)
            shutil.rmtree(self.dir, ignore_errors=True)

    async def _disconnect(self) -> None:
        self.bus.disconnect()


def _menu_item(layout: list) -> MenuItem:
    item_id, props, children = layout
    props = {k: v.value for k, v in props.items()}
    label = props.get("label", "")
    # dbusmenu marks mnemonics with "_" and escapes a literal one as "__".
    label = label.replace("__", "\0").replace("_", "").replace("\0", "_")
    return MenuItem(item_id, label, props.get("enabled", True), props.get("toggle-state"),
                    [_menu_item(child.value) for child in children])


def x_server() -> tuple[subprocess.Popen, str]:
    """An Xvfb display on a free number."""
    if shutil.which("Xvfb") is None:
        raise RuntimeError("Xvfb is not installed: install the xvfb package (.ci/run does)")
    for n in range(300 + os.getpid() % 50, 500):
        if not Path(f"/tmp/.X11-unix/X{n}").exists() and not Path(f"/tmp/.X{n}-lock").exists():
            break
    proc = subprocess.Popen(["Xvfb", f":{n}", "-screen", "0", "1280x900x24", "-nolisten", "tcp"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while not Path(f"/tmp/.X11-unix/X{n}").exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"Xvfb :{n} did not start (exit {proc.poll()})")
        time.sleep(0.02)
    return proc, f":{n}"


def close_window(display: str, window: int) -> None:
    """Asks ``window`` to close as a window manager's close button does
    (a WM_DELETE_WINDOW client message), through libX11: Xvfb has no window
    manager, and xdotool can only destroy windows outright."""
    import ctypes
    import ctypes.util

    x11 = ctypes.cdll.LoadLibrary(ctypes.util.find_library("X11") or "libX11.so.6")
    x11.XOpenDisplay.restype = ctypes.c_void_p
    x11.XOpenDisplay.argtypes = [ctypes.c_char_p]
    x11.XInternAtom.restype = ctypes.c_ulong
    x11.XInternAtom.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
    x11.XSendEvent.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_int, ctypes.c_long, ctypes.c_void_p]
    x11.XFlush.argtypes = [ctypes.c_void_p]
    x11.XCloseDisplay.argtypes = [ctypes.c_void_p]

    class ClientMessage(ctypes.Structure):
        _fields_ = [("type", ctypes.c_int), ("serial", ctypes.c_ulong), ("send_event", ctypes.c_int),
                    ("display", ctypes.c_void_p), ("window", ctypes.c_ulong), ("message_type", ctypes.c_ulong),
                    ("format", ctypes.c_int), ("data", ctypes.c_long * 5)]

    class Event(ctypes.Union):
        _fields_ = [("xclient", ClientMessage), ("pad", ctypes.c_long * 24)]

    dpy = x11.XOpenDisplay(display.encode())
    if not dpy:
        raise RuntimeError(f"cannot open X display {display}")
    try:
        event = Event()
        event.xclient.type = 33  # ClientMessage
        event.xclient.window = window
        event.xclient.message_type = x11.XInternAtom(dpy, b"WM_PROTOCOLS", 0)
        event.xclient.format = 32
        event.xclient.data[0] = x11.XInternAtom(dpy, b"WM_DELETE_WINDOW", 0)
        event.xclient.data[1] = 0  # CurrentTime
        x11.XSendEvent(dpy, window, 0, 0, ctypes.byref(event))
        x11.XFlush(dpy)
    finally:
        x11.XCloseDisplay(dpy)
