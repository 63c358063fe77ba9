echo ~ ~/x "~" x~
HOME=/home/u
echo ~ ~/y
