#!/usr/bin/env bash
set -euo pipefail
# Fetch the challenge's real models and data into the official kit's locations, or build the demo.
#
#   bash download.sh                      models + 10k seed pool + finetuning set + eval set
#   bash download.sh --models --eval      only those groups (also: --data, --recipe-models)
#   bash download.sh --full               the full seed pool and finetuning set instead of the 10k ones
#   bash download.sh --dry-run --full     list every file with its destination; fetch nothing
#   bash download.sh --demo               build the embedded demo assets offline (bsynth demo build)
#
# Downloads resume (axel when installed, else wget -c, else curl -C -) and are retried; an
# archive is checked (gzip CRC and tar listing, one top folder named like its destination) before
# it is extracted into a hidden temporary folder beside the destination and moved into place, so a
# destination is either absent or complete. Complete items carry a marker and are skipped.
# A summary ends the run; any failure makes the exit status non-zero.
#
# Environment: BSYNTH_ASSETS_ROOT (where the layout is rooted, default: this folder),
# BSYNTH_DOWNLOAD_BASE_URL (the organisers' object store), BSYNTH_DOWNLOADER (axel|wget|curl),
# BSYNTH_DOWNLOAD_TRIES (attempts per file, default 5), HF_ENDPOINT (a Hugging Face mirror).

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export BSYNTH_ROOT="${BSYNTH_ROOT:-$ROOT}"  # bsynth works in this checkout, wherever it is called from
PYTHON="${PYTHON:-python3}"
MARKER=".bsynth-download-complete"
TRIES="${BSYNTH_DOWNLOAD_TRIES:-5}"

usage() { awk 'NR > 2 && /^#/ { sub(/^# ?/, ""); print; next } NR > 2 { exit }' "${BASH_SOURCE[0]}"; }

bsynth_py() { PYTHONPATH="$ROOT/toolkit${PYTHONPATH:+:$PYTHONPATH}" "$PYTHON" "$@"; }

groups=() variant="10k" dry_run=0 demo=0
while [ $# -gt 0 ]; do
  case "$1" in
    --models) groups+=(models) ;;
    --data) groups+=(data) ;;
    --eval) groups+=(eval) ;;
    --recipe-models) groups+=(recipe-models) ;;
    --10k) variant="10k" ;;
    --full) variant="full" ;;
    --dry-run) dry_run=1 ;;
    --demo) demo=1 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "download.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done

if [ "$demo" = 1 ]; then
  if [ "${#groups[@]}" -gt 0 ] || [ "$dry_run" = 1 ]; then
    echo "download.sh: --demo builds everything offline; it takes no other option" >&2
    exit 2
  fi
  exec env PYTHONPATH="$ROOT/toolkit${PYTHONPATH:+:$PYTHONPATH}" "$PYTHON" -m bettersynth demo build
fi
[ "${#groups[@]}" -gt 0 ] || groups=(models data eval)

pick_downloader() {
  local wanted="${BSYNTH_DOWNLOADER:-}"
  if [ -n "$wanted" ]; then
    command -v "$wanted" >/dev/null || { echo "download.sh: BSYNTH_DOWNLOADER=$wanted is not installed" >&2; exit 2; }
    echo "$wanted"; return
  fi
  for tool in axel wget curl; do
    if command -v "$tool" >/dev/null; then echo "$tool"; return; fi
  done
  echo "download.sh: needs axel, wget or curl" >&2; exit 2
}

# fetch URL OUT: download URL to OUT, resuming OUT.part across attempts and runs; OUT appears only complete.
fetch() {
  local url="$1" out="$2" part="$2.part" attempt=1 status
  while :; do
    status=0
    case "$DOWNLOADER" in
      axel) axel --quiet --num-connections=5 --output="$part" "$url" || status=$? ;;
      wget) wget --quiet --continue --tries=1 --timeout=60 --output-document="$part" "$url" || status=$? ;;
      curl) curl --fail --silent --show-error --location --continue-at - --output "$part" "$url" || status=$? ;;
    esac
    if [ "$status" = 0 ]; then
      mv -f "$part" "$out"
      return 0
    fi
    if [ "$attempt" -ge "$TRIES" ]; then
      echo "  failed after $attempt attempt(s) ($DOWNLOADER exit $status): $url" >&2
      echo "  the partial file $part is kept and resumed next time (delete it to start over)" >&2
      return 1
    fi
    echo "  attempt $attempt failed ($DOWNLOADER exit $status); resuming" >&2
    attempt=$((attempt + 1))
    sleep 1
  done
}

# check_archive ARCHIVE TOP: the gzip stream is intact and every entry lies under TOP/.
check_archive() {
  local archive="$1" top="$2" listing bad
  if ! gzip -t "$archive" 2>/dev/null; then
    echo "  corrupt archive (gzip check failed): $archive" >&2; return 1
  fi
  if ! listing="$(tar -tzf "$archive")"; then
    echo "  corrupt archive (tar listing failed): $archive" >&2; return 1
  fi
  bad="$(printf '%s\n' "$listing" | grep -v -E "^(\./)?${top//./\\.}(/|$)" | head -n 3 || true)"
  if [ -z "$listing" ] || [ -n "$bad" ]; then
    echo "  unexpected archive layout (want one top folder $top/): ${bad:-empty archive}" >&2; return 1
  fi
  if printf '%s\n' "$listing" | grep -q -E '(^/|(^|/)\.\.(/|$))'; then
    echo "  archive holds absolute or .. paths: $archive" >&2; return 1
  fi
}

# get_archive URL DEST TOP: download, check, extract beside DEST, move into place, mark complete.
get_archive() {
  local url="$1" dest="$2" top="$3" parent archive tmp
  parent="$(dirname "$dest")"
  archive="$parent/.$(basename "$url")"
  mkdir -p "$parent"
  fetch "$url" "$archive" || return 1
  if ! check_archive "$archive" "$top"; then
    rm -f "$archive"
    echo "  removed the bad archive; the next run downloads it again" >&2
    return 1
  fi
  rm -rf "$parent/.extract-$top."*
  tmp="$(mktemp -d "$parent/.extract-$top.XXXXXX")"
  if ! tar -xzf "$archive" -C "$tmp"; then
    rm -rf "$tmp"
    echo "  extraction failed: $archive" >&2; return 1
  fi
  touch "$tmp/$top/$MARKER"
  mv "$tmp/$top" "$dest"
  rm -rf "$tmp" "$archive"
}

is_complete() {  # KIND DEST
  case "$1" in
    file) [ -f "$2" ] ;;
    *) [ -f "$2/$MARKER" ] ;;
  esac
}

join_groups() { local IFS=,; echo "$*"; }

manifest="$(bsynth_py -m bettersynth.download manifest --variant "$variant" --groups "$(join_groups "${groups[@]}")")"
if [ "$dry_run" = 0 ]; then
  DOWNLOADER="$(pick_downloader)"
fi

declare -A state=()
summary=()
failed=0
while IFS=$'\t' read -r -u 3 name group kind source dest top after; do
  [ -n "$name" ] || continue
  if is_complete "$kind" "$dest"; then
    state[$name]=complete
    summary+=("skipped   $name (complete: $dest)")
    continue
  fi
  if [ "$dry_run" = 1 ]; then
    state[$name]=complete
    summary+=("would get $name [$group, $kind] $source -> $dest")
    continue
  fi
  if [ "$after" != "-" ] && [ "${state[$after]:-}" != complete ]; then
    state[$name]=blocked
    summary+=("BLOCKED   $name (needs $after)")
    failed=1
    continue
  fi
  if [ "$kind" != file ] && [ -e "$dest" ]; then
    state[$name]=failed
    summary+=("FAILED    $name ($dest exists but was not completed by download.sh: remove it to download again)")
    failed=1
    continue
  fi
  echo "[$name] $source -> $dest"
  status=0
  case "$kind" in
    archive) get_archive "$source" "$dest" "$top" || status=$? ;;
    file) mkdir -p "$(dirname "$dest")" && fetch "$source" "$dest" || status=$? ;;
    modelscope|huggingface)
      bsynth_py -m bettersynth.download snapshot --hub "$kind" --model-id "$source" --dest "$dest" || status=$? ;;
    nltk) bsynth_py -m bettersynth.download nltk --packages "$source" --dest "$dest" || status=$? ;;
  esac
  if [ "$status" = 0 ]; then
    state[$name]=complete
    summary+=("done      $name -> $dest")
  else
    state[$name]=failed
    summary+=("FAILED    $name ($source)")
    failed=1
  fi
done 3<<< "$manifest"

echo
echo "Summary ($variant; $(join_groups "${groups[@]}")):"
printf '  %s\n' "${summary[@]}"
if [ "$failed" != 0 ]; then
  echo "Some items failed; fix the cause and run the same command again (complete items are skipped)." >&2
  exit 1
fi
