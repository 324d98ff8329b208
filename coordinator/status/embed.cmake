# embed.cmake -- turn a file into a C array, at build time (the status page, coord_status.c):
#   cmake -DIN=index.html -DOUT=gw_status_page.c -DNAME=gw_coord_status_html -P embed.cmake
file(READ "${IN}" hex HEX)
string(LENGTH "${hex}" n)
math(EXPR n "${n} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
file(WRITE "${OUT}" "/* generated from ${IN} by embed.cmake: do not edit */\n"
  "const char ${NAME}[] = {${bytes}0x00};\n"
  "const unsigned long ${NAME}_len = ${n};\n")
