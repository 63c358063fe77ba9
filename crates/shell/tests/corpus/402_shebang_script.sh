printf '#!/bin/sh\necho "shebang $# $1"\n' > run.sh
chmod +x run.sh
./run.sh x y
