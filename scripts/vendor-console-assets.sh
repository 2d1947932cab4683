#!/usr/bin/env bash
# Copy the JavaScript and CSS the web console (/ui) loads into the package
# (src/conveyor/console/static/vendor/), so the console works on a machine without internet
# access and needs no Node.js at install or run time. The files are committed: run this only to
# upgrade them (needs npm), then commit the result.
#   bash scripts/vendor-console-assets.sh                 # the pinned versions below
#   HTMX_VERSION=2.0.12 bash scripts/vendor-console-assets.sh
# htmx stays on major 2: the templates use its 2.x attributes (hx-get, hx-trigger="every 1s").
set -euo pipefail
cd "$(dirname "$0")/.."
HTMX_VERSION=${HTMX_VERSION:-2.0.11}
UPLOT_VERSION=${UPLOT_VERSION:-1.6.32}
dest=src/conveyor/console/static/vendor
source scripts/npm-unpack.sh
unpack htmx.org "$HTMX_VERSION" htmx
unpack uplot "$UPLOT_VERSION" uplot

rm -rf "$dest"
mkdir -p "$dest/htmx" "$dest/uplot"
cp "$work/htmx/dist/htmx.min.js" "$work/htmx/LICENSE" "$dest/htmx/"
cp "$work/uplot/dist/uPlot.iife.min.js" "$work/uplot/dist/uPlot.min.css" "$work/uplot/LICENSE" \
   "$dest/uplot/"
# Source maps are not shipped; drop any comment that points browsers' devtools at them.
sed -i '/^\/\/# sourceMappingURL=/d' "$dest/htmx/htmx.min.js" "$dest/uplot/uPlot.iife.min.js"

htmx_license=$(node -p "require('$work/htmx/package.json').license")
uplot_license=$(node -p "require('$work/uplot/package.json').license")
{
    echo "# Vendored console assets"
    echo
    echo "Served by \`conveyor.console\` under \`/ui/static/vendor/\`, so the console needs no"
    echo "network. Written by \`scripts/vendor-console-assets.sh\`; do not edit by hand."
    echo
    echo "| folder | npm package | version | licence |"
    echo "|---|---|---|---|"
    echo "| \`htmx/\` | \`htmx.org\` | $HTMX_VERSION | $htmx_license (\`LICENSE\`) |"
    echo "| \`uplot/\` | \`uplot\` | $UPLOT_VERSION | $uplot_license (\`LICENSE\`) |"
    echo
    echo "Changed from the packages: source-map comments removed (the maps are not shipped)."
    echo
    echo "SHA-256 of each file:"
    echo
    echo '```'
    (cd "$dest" && sha256sum htmx/* uplot/*)
    echo '```'
} > "$dest/README.md"
echo "vendored htmx.org $HTMX_VERSION and uplot $UPLOT_VERSION into $dest"
