basename /usr/lib/libx.so .so
dirname /usr/lib/libx.so
