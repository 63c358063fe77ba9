from alpine as Builder
run echo one
RUN echo two
maintainer me
env API_TOKEN secret
workdir app
cmd echo a
cmd echo b
from Builder as builder
