#!/usr/bin/env bash
# Renders the committed PNG icons from the SVG sources in src/. Run it after
# editing a source; the PNGs are committed so builds need no SVG renderer.
# Needs rsvg-convert (Debian: librsvg2-bin).
set -euo pipefail
cd "$(dirname "$0")"

# Tray icons: 64 px, which the tray scales down crisply to its 16-32 px slot.
for state in idle learning training paused error; do
    rsvg-convert -w 64 -h 64 "src/tray-$state.svg" -o "tray-$state.png"
done

# Application icons in the sizes Tauri's bundler and window icon use.
rsvg-convert -w 32 -h 32 src/app.svg -o 32x32.png
rsvg-convert -w 128 -h 128 src/app.svg -o 128x128.png
rsvg-convert -w 256 -h 256 src/app.svg -o 128x128@2x.png
rsvg-convert -w 512 -h 512 src/app.svg -o icon.png
