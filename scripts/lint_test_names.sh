#!/bin/sh
# ctest cuts a discovered Catch2 test's name at ';' and then runs a filter that matches
# nothing, which passes: such a test never runs. Fails when a TEST_CASE name holds a ';'.
#   scripts/lint_test_names.sh TESTS_DIR
if grep -rn 'TEST_CASE("[^"]*;' "${1:?usage: $0 TESTS_DIR}"; then
  echo "lint_test_names: a ';' in a test's name (above): ctest would never run it"
  exit 1
fi
exit 0
