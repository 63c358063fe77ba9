: "${PREFIX:=/opt/app}"
VERSION=1.2.3
major=${VERSION%%.*}
minor=${VERSION#*.}; minor=${minor%.*}
echo "install to $PREFIX v$major.$minor"
