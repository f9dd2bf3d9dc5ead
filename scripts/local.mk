# scripts/: the README's commands (check, demo) and the throwaway PKI.
EXTRA_DIST += scripts/check scripts/demo scripts/deps.sh scripts/mkpki
