case foo.tar.gz in
  *.zip|*.tgz) echo zip;;
  *.tar.*) echo tar;;
esac
