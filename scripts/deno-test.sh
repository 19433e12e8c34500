#!/usr/bin/env bash
# The test files under Deno, each in a Deno process of its own: zeromq.js's
# native sockets under Deno can crash a process that has opened and closed many
# of them (one CI run segfaulted in the 25th file, every file passes alone), and
# a file should not fail for what the files before it left behind.
set -uo pipefail  # not -e: run every file, then report
cd "$(dirname "$0")/.."

failed=()
for file in "${@:-test/}"; do
  [ -d "$file" ] && files=("${file%/}"/*.test.ts) || files=("$file")
  for f in "${files[@]}"; do
    echo "== deno test $f"
    npx deno test -A "$f" || failed+=("$f")
  done
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "deno-test: FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "deno-test: every file passed"
