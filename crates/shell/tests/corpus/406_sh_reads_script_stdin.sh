echo 'echo from-stdin-script' | sh
