# bash completion for godwitctl (installed as /usr/share/bash-completion/completions/godwitctl)
_godwitctl_vms() {
	godwitctl --json vm list 2>/dev/null | sed -n 's/.*"name": *"\([^"]*\)".*/\1/p'
	godwitctl --json cluster vm list 2>/dev/null | sed -n 's/.*"name": *"\([^"]*\)".*/\1/p'
}
_godwitctl_hosts() {
	godwitctl --json host list 2>/dev/null | sed -n 's/.*"name": *"\([^"]*\)".*/\1/p'
}
_godwitctl() {
	local cur prev words cword
	_init_completion 2>/dev/null || {
		cur="${COMP_WORDS[COMP_CWORD]}" prev="${COMP_WORDS[COMP_CWORD - 1]}"
		words=("${COMP_WORDS[@]}") cword=$COMP_CWORD
	}
	local i cmd=() w
	for ((i = 1; i < cword; i++)); do
		w="${words[i]}"
		case "$w" in
		--socket | --coordinator-socket | --timeout) ((i++)) ;;
		-*) ;;
		*) cmd+=("$w") ;;
		esac
	done
	case "$prev" in
	--socket | --coordinator-socket | --image | --xml) COMPREPLY=($(compgen -f -- "$cur")); return ;;
	--to-host | --host) COMPREPLY=($(compgen -W "$(_godwitctl_hosts)" -- "$cur")); return ;;
	--driver) COMPREPLY=($(compgen -W "microvm libvirt" -- "$cur")); return ;;
	esac
	if [[ "$cur" == -* ]]; then
		COMPREPLY=($(compgen -W "--json --socket --coordinator-socket --timeout --help --version" -- "$cur"))
		return
	fi
	case "${cmd[*]}" in
	"") COMPREPLY=($(compgen -W "vm cluster host events agent help" -- "$cur")) ;;
	vm) COMPREPLY=($(compgen -W "create import start stop pause resume delete list show console migrate migrate-status migrate-cancel" -- "$cur")) ;;
	"vm "*) COMPREPLY=($(compgen -W "$(_godwitctl_vms)" -- "$cur")) ;;
	cluster) COMPREPLY=($(compgen -W "status vm balance" -- "$cur")) ;;
	"cluster vm") COMPREPLY=($(compgen -W "create import list migrate migrate-cancel stop start delete" -- "$cur")) ;;
	"cluster vm "*) COMPREPLY=($(compgen -W "$(_godwitctl_vms)" -- "$cur")) ;;
	"cluster balance") COMPREPLY=($(compgen -W "--dry-run" -- "$cur")) ;;
	host) COMPREPLY=($(compgen -W "list maintenance" -- "$cur")) ;;
	"host maintenance") COMPREPLY=($(compgen -W "enter exit" -- "$cur")) ;;
	"host maintenance "*) COMPREPLY=($(compgen -W "$(_godwitctl_hosts)" -- "$cur")) ;;
	agent) COMPREPLY=($(compgen -W "info" -- "$cur")) ;;
	esac
}
complete -F _godwitctl godwitctl
