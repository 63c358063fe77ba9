trap 'echo cleanup $?' EXIT
nosuchcommand_abc
