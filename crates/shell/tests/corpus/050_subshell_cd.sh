(cd dir && pwd)
pwd
