#!/bin/bash
# smpctl's bash completion completes commands, subcommands and keys.
# usage: check-completion.sh COMPLETION_FILE
set -u
bc=/usr/share/bash-completion/bash_completion
[ -r $bc ] || { echo "FAIL: $bc missing (apt-get install bash-completion)"; exit 1; }
. $bc
. "$1"
compopt() { :; }  # only works inside real completion
rc=0
complete_line() {       # complete_line "words..." -> COMPREPLY
	COMP_LINE=$1
	read -ra COMP_WORDS <<< "$1"
	[[ $1 == *" " ]] && COMP_WORDS+=("")
	COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
	COMP_POINT=${#COMP_LINE}
	COMPREPLY=()
	_smpctl smpctl "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
}
expect() {              # expect "line" "wanted words"
	complete_line "$1"
	local got="${COMPREPLY[*]-}"
	if [[ $got != "$2" ]]; then echo "FAIL: '$1' -> '$got', want '$2'"; rc=1; else echo "ok: '$1' -> '$got'"; fi
}
expect "smpctl ses" "session"
expect "smpctl st" "status start stop"
expect "smpctl session " "begin end zone note list show report"
expect "smpctl session zone c" "crown"
expect "smpctl --json log v" "verify"
expect "smpctl log export --format=c" "csv"
expect "smpctl log verify --jo" "--journal="
expect "smpctl log r" "recall"
expect "smpctl log b" "bundle"
expect "smpctl log bundle --f" "--from="
expect "smpctl log bundle --from=2026-01-01 --t" "--to="
expect "smpctl log recall --pig" "--pigment-lot="
expect "smpctl log recall --format=t" "table"
expect "smpctl log export --format=" "json csv"
expect "smpctl set de" "depth="
expect "smpctl limits " "show"
expect "smpctl --js" "--json"
exit $rc
