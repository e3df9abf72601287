#!/usr/bin/env bash
# Unpack OHIF's published build (npm package @ohif/app: the built single-page app under
# dist/) into build/ohif/VERSION/dist, where the viewer test serves it on loopback in
# front of a test Orthanc (tests/ohif_viewer.py). Needs npm (Debian: npm, or Node's own).
# Idempotent: does nothing when that version is already unpacked.
set -euo pipefail
version="${OHIF_VERSION:-3.13.2}"
target="build/ohif/${version}"
cd "$(dirname "$0")/.."
if [ -f "${target}/dist/index.html" ]; then
  echo "ohif ${version}: present"
  exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
  echo "npm is missing: install Node.js (Debian: apt-get install npm) and run this again" >&2
  exit 1
fi
rm -rf "${target}.partial"
mkdir -p "${target}.partial"
(cd "${target}.partial" && npm pack --silent "@ohif/app@${version}" >/dev/null)
tar -xzf "${target}.partial"/ohif-app-"${version}".tgz -C "${target}.partial" --strip-components=1 package/dist
rm "${target}.partial"/ohif-app-"${version}".tgz
rm -rf "${target}"
mv "${target}.partial" "${target}"
echo "ohif ${version}: unpacked into ${target}/dist"
