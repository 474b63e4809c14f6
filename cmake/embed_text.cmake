# cmake -DIN=file -DOUT=file.cpp -DNAME=ns::symbol -P embed_text.cmake
# Writes a C++ file defining `const char* const NAME` with IN's text, so a
# source file (the Python host's imjoy.py) ships inside the executable.
file(READ ${IN} text)
string(FIND "${text}" ")joy-embed\"" clash)
if(NOT clash EQUAL -1)
  message(FATAL_ERROR "${IN} contains the raw-string delimiter")
endif()
string(REGEX REPLACE "::[^:]*$" "" ns "${NAME}")
string(REGEX REPLACE "^.*::" "" symbol "${NAME}")
file(WRITE ${OUT}.tmp "// Generated from ${IN}; do not edit.\nnamespace ${ns} {\nextern const char* const ${symbol};\nconst char* const ${symbol} = R\"joy-embed(${text})joy-embed\";\n}\n")
file(COPY_FILE ${OUT}.tmp ${OUT} ONLY_IF_DIFFERENT)
