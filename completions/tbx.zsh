#compdef tbx

_tbx_completion() {
  eval $(env _TYPER_COMPLETE_ARGS="${words[1,$CURRENT]}" _TBX_COMPLETE=complete_zsh tbx)
}

if [[ "${funcstack[1]}" == "_tbx" ]]; then
  _tbx_completion "$@"
else
  compdef _tbx_completion tbx
fi
