# One interface target carries the project's warning set; every module links it PRIVATE.
add_library(mcpx_warnings INTERFACE)
target_compile_options(mcpx_warnings INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wcast-align -Wconversion -Wsign-conversion
  -Wnon-virtual-dtor -Wold-style-cast -Woverloaded-virtual -Wnull-dereference
  -Wdouble-promotion -Wformat=2 -Wimplicit-fallthrough -Wno-unused-parameter
  $<$<CXX_COMPILER_ID:GNU>:-Wduplicated-cond -Wlogical-op>)
add_library(mcpx::warnings ALIAS mcpx_warnings)
