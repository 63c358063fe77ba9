printf 'a\nb\n' | xargs echo got
