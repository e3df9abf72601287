#!/usr/bin/env bash
# Install the Debian programs the test suite starts for real (Redis, dcmtk, dicom3tools,
# Orthanc and its DICOMweb plugin, PostgreSQL; openssl makes the TLS test certificates;
# Chromium, headless, shows the web dashboard and OHIF to the browser tests; npm fetches
# OHIF's published build, scripts/install-ohif.sh; OFFIS DICOMscope shows the GSPS on a
# virtual screen, Xvfb, driven by xdotool). Idempotent: does nothing when every
# program and file is already present.
set -euo pipefail

# program -> Debian package that provides it
declare -A wanted=(
  [redis-server]=redis-server
  [storescu]=dcmtk
  [dciodvfy]=dicom3tools
  [Orthanc]=orthanc
  [pg_ctl]=postgresql
  [openssl]=openssl
  [chromium]=chromium
  [npm]=npm
  [dicomscope]=dicomscope
  [Xvfb]=xvfb
  [xdotool]=xdotool
)

# file -> Debian package that provides it (plugins are files, not programs)
declare -A wanted_files=(
  [/usr/share/orthanc/plugins/libOrthancDicomWeb.so]=orthanc-dicomweb
)

missing=()
for file in "${!wanted_files[@]}"; do
  [ -e "$file" ] || missing+=("${wanted_files[$file]}")
done
for program in "${!wanted[@]}"; do
  if ! command -v "$program" >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/"$program" >/dev/null 2>&1; then
    missing+=("${wanted[$program]}")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "system packages: all present"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "system packages missing (${missing[*]}); run this script as root" >&2
  exit 1
fi

echo "system packages: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The Debian packages start their services; the tests start their own on loopback ports.
for service in redis-server orthanc postgresql; do
  if command -v service >/dev/null 2>&1; then service "$service" stop >/dev/null 2>&1 || true; fi
done
echo "system packages: done"
