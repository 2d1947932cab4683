# Sourced by the vendor-*-assets.sh scripts: a scratch folder, removed on exit, and
#   unpack PACKAGE VERSION FOLDER   # npm package PACKAGE@VERSION extracted into $work/FOLDER
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

unpack() {
    (cd "$work" && npm pack --silent "$1@$2" >/dev/null)
    mkdir -p "$work/$3"
    tar xzf "$work/$1-$2.tgz" -C "$work/$3" --strip-components=1
}
