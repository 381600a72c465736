#compdef tbx

_tbx_completion() {
  eval $(env _TYPER_COMPLETE_ARGS="${words[1,$CURRENT]}" _TBX_COMPLETE=complete_zsh tbx)
}

compdef _tbx_completion tbx
