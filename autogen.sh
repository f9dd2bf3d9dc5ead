#!/bin/sh
# Regenerate the build system. Run once after a fresh clone.
set -e
cd "$(dirname "$0")"
exec autoreconf -fi
