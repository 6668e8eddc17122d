// Start-up: pick the transport (Tauri IPC inside the tray app, HTTP with
// the admin token in a browser), then start the app, or show how to open
// the dashboard when a browser has no token.

import './styles.css';
import { Api } from './api';
import { App, renderGate } from './app';
import { parseHash } from './router';
import { HttpTransport } from './transport/http';
import { inTauri, TauriTransport } from './transport/tauri';
import { adoptToken, forgetToken, splitToken } from './transport/token';

function boot(): void {
  const root = document.getElementById('app');
  if (!root) throw new Error('index.html has no #app element');
  if (inTauri()) {
    const windowMode = parseHash(location.hash).params.get('window') === 'settings';
    new App(root, new Api(new TauriTransport()), windowMode).start();
    return;
  }
  // Before anything reads the hash: the token must leave the address bar.
  const token = adoptToken();
  // A new dashboard address pasted into this tab: take its token (and get it
  // out of the address bar) and start again with it.
  window.addEventListener('hashchange', () => {
    if (splitToken(location.hash).token !== null) {
      adoptToken();
      location.reload();
    }
  });
  const windowMode = parseHash(location.hash).params.get('window') === 'settings';
  if (!token) {
    renderGate(root, 'missing', '');
    return;
  }
  new App(root, new Api(new HttpTransport(token)), windowMode, () => forgetToken()).start();
}

boot();
