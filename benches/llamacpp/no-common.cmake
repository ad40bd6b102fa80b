# Leaves llama.cpp's `common` library out of llama-cpp-python's build. setup.sh passes this file
# as CMAKE_PROJECT_llama.cpp_INCLUDE, so CMake includes it inside llama.cpp's own CMakeLists,
# right after its project() call.
#
# llama-cpp-python forces the cache entry LLAMA_BUILD_COMMON to ON, but never loads the library:
# its Python modules open libllama, libggml* and libmtmd only, and the wheel does not ship
# libcommon. `common` is 52 of the build's 127 compile steps without mtmd (the chat-template
# parsers, argument parsing, an HTTP client), among its slowest. A normal variable set here, in
# llama.cpp's directory scope, shadows the cache entry: option() leaves it alone (policy CMP0077)
# and `if (LLAMA_BUILD_COMMON)` reads OFF.
set(LLAMA_BUILD_COMMON OFF)
