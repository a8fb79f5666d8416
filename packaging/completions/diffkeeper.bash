# bash completion for diffkeeper (installed as /usr/share/bash-completion/completions/diffkeeper).
# Static on purpose: completing must not start the CLI (which may open the store) on every <TAB>.
_diffkeeper() {
  local cur prev words cword
  _init_completion 2>/dev/null || { cur=${COMP_WORDS[COMP_CWORD]}; prev=${COMP_WORDS[COMP_CWORD-1]}; words=("${COMP_WORDS[@]}"); cword=$COMP_CWORD; }
  local verbs="ls timeline show diff export snapshot pack gc doctor setup"
  local global="--store --json --quiet -q --help -h --version"
  local verb="" i
  for ((i = 1; i < cword; i++)); do
    case ${words[i]} in --store) ((i++)) ;; -*) ;; *) verb=${words[i]}; break ;; esac
  done
  case $prev in
    --store|--out|-o|--output|--merged|--config|--backup) COMPREPLY=($(compgen -f -- "$cur")); return ;;
  esac
  local opts=""
  case $verb in
    "") COMPREPLY=($(compgen -W "$verbs $global" -- "$cur")); return ;;
    timeline) opts="--from --to --path" ;;
    show) opts="--at" ;;
    diff) opts="--from --to" ;;
    export) opts="--at --out -o" ;;
    snapshot) opts="--recording -r --at --merged" ;;
    pack) opts="--output -o" ;;
    gc) opts="--keep-last --max-bytes --keep-failed-only --dry-run" ;;
    doctor) opts="--store-only --containerd-config --socket" ;;
    setup) if [ "${words[cword-1]}" = setup ]; then COMPREPLY=($(compgen -W "containerd" -- "$cur")); return; fi
           opts="--config --dry-run --undo --containerd-version --options-file" ;;
  esac
  COMPREPLY=($(compgen -W "$opts $global" -- "$cur"))
  [ ${#COMPREPLY[@]} -eq 0 ] && COMPREPLY=($(compgen -f -- "$cur"))
}
complete -F _diffkeeper diffkeeper
