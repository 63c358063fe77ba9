readonly R=fixed
R=changed
echo "not reached $R"
