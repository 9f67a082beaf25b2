#!/usr/bin/env bash
# compare_runs.sh A B: two runs of a lesson wrote the same files (the resume test: a straight run
# against one killed and resumed). Every file must be byte-identical, except timings: a chapter
# section whose first line is the timing marker (lab::Timing::yes), and report.md when the run
# wrote such a section, are compared with their numbers masked (same words and layout).
# checkpoints/ (only the resumed run has one) is not compared.
set -euo pipefail
a=$1 b=$2
marker='<!-- timings: not compared -->'
mask() { sed -E 's/[-+]?[0-9]+([.][0-9]+)?([eE][-+]?[0-9]+)?/#/g' "$1"; }
timed=0
grep -rlxF -- "$marker" "$a/chapter" >/dev/null 2>&1 && timed=1
status=0 files=0 masked=0
while IFS= read -r -d '' f; do
  rel=${f#"$a"/}
  files=$((files + 1))
  if [ ! -f "$b/$rel" ]; then
    echo "only in $a: $rel"; status=1; continue
  fi
  timing=0
  case $rel in
    chapter/*.md) [ "$(head -n1 "$f")" = "$marker" ] && timing=1 ;;
    report.md) timing=$timed ;;
  esac
  if [ $timing = 1 ]; then
    masked=$((masked + 1))
    diff <(mask "$f") <(mask "$b/$rel") >/dev/null || { echo "differs beyond its timings: $rel"; diff "$f" "$b/$rel" | head -20; status=1; }
  elif ! cmp -s "$f" "$b/$rel"; then
    echo "differs: $rel"; diff "$f" "$b/$rel" 2>/dev/null | head -20 || true; status=1
  fi
done < <(find "$a" -type f -not -path "$a/checkpoints/*" -print0)
while IFS= read -r -d '' f; do
  rel=${f#"$b"/}
  [ -f "$a/$rel" ] || { echo "only in $b: $rel"; status=1; }
done < <(find "$b" -type f -not -path "$b/checkpoints/*" -print0)
[ $status = 0 ] && echo "$files files identical ($masked of them timings, compared with their numbers masked)"
exit $status
