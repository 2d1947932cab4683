#!/usr/bin/env bash
# Copy the Swagger UI and ReDoc assets that /docs and /redoc serve into the package
# (src/conveyor/api/static/), so the API docs work on a machine without internet access.
# The files are committed: run this only to upgrade them (needs npm), then commit the result.
#   bash scripts/vendor-docs-assets.sh                 # the pinned versions below
#   SWAGGER_UI_VERSION=5.36.0 bash scripts/vendor-docs-assets.sh
# ReDoc stays on major 2: FastAPI's page (get_redoc_html) is written for its <redoc> element.
set -euo pipefail
cd "$(dirname "$0")/.."
SWAGGER_UI_VERSION=${SWAGGER_UI_VERSION:-5.35.0}
REDOC_VERSION=${REDOC_VERSION:-2.5.4}
dest=src/conveyor/api/static
source scripts/npm-unpack.sh
unpack swagger-ui-dist "$SWAGGER_UI_VERSION" swagger-ui
unpack redoc "$REDOC_VERSION" redoc

rm -rf "$dest/swagger-ui" "$dest/redoc"
mkdir -p "$dest/swagger-ui" "$dest/redoc"
for f in swagger-ui-bundle.js swagger-ui-bundle.js.LICENSE.txt swagger-ui.css favicon-32x32.png \
         LICENSE NOTICE; do
    cp "$work/swagger-ui/$f" "$dest/swagger-ui/"
done
cp "$work/redoc/bundles/redoc.standalone.js" "$work/redoc/bundles/redoc.standalone.js.LICENSE.txt" \
   "$work/redoc/LICENSE" "$dest/redoc/"
# ReDoc's sidebar shows Redocly's logo from their CDN, and hides the image when it fails to load:
# give it an empty src so it is never fetched (an offline page must ask nothing of the network).
logo='src:"https://cdn.redoc.ly/redoc/logo-mini.svg"'
grep -qF "$logo" "$dest/redoc/redoc.standalone.js" || { echo "ReDoc's logo URL moved: update $0" >&2; exit 1; }
sed -i "s|$logo|src:\"\"|" "$dest/redoc/redoc.standalone.js"
# Source maps are not shipped; drop the comments that point browsers' devtools at them.
sed -i '/^\/\/# sourceMappingURL=/d' "$dest/swagger-ui/swagger-ui-bundle.js"
sed -i '/^\/\*# sourceMappingURL=.*\*\/$/d' "$dest/swagger-ui/swagger-ui.css"
sed -i 's|//# sourceMappingURL=redoc.standalone.js.map||' "$dest/redoc/redoc.standalone.js"

swagger_license=$(node -p "require('$work/swagger-ui/package.json').license")
redoc_license=$(node -p "require('$work/redoc/package.json').license")
{
    echo "# Vendored API docs assets"
    echo
    echo "Served by \`conveyor.api.docs\` at \`/docs\` (Swagger UI) and \`/redoc\` (ReDoc), so the"
    echo "pages need no network. Written by \`scripts/vendor-docs-assets.sh\`; do not edit by hand."
    echo
    echo "| folder | npm package | version | licence |"
    echo "|---|---|---|---|"
    echo "| \`swagger-ui/\` | \`swagger-ui-dist\` | $SWAGGER_UI_VERSION | $swagger_license (\`LICENSE\`, \`NOTICE\`) |"
    echo "| \`redoc/\` | \`redoc\` | $REDOC_VERSION | $redoc_license (\`LICENSE\`) |"
    echo
    echo "Changed from the packages: source-map comments removed (the maps are not shipped), and"
    echo "ReDoc's sidebar logo, which it loads from Redocly's CDN, given an empty source."
    echo
    echo "SHA-256 of each file:"
    echo
    echo '```'
    (cd "$dest" && sha256sum swagger-ui/* redoc/*)
    echo '```'
} > "$dest/README.md"
echo "vendored swagger-ui-dist $SWAGGER_UI_VERSION and redoc $REDOC_VERSION into $dest"
