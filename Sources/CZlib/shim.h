// The system zlib (SPDY/3 header compression, module SPDY). zlib's
// init functions are macros, which Swift cannot call; these wrappers expose them.
#ifndef AGENTGATE_CZLIB_SHIM_H
#define AGENTGATE_CZLIB_SHIM_H
#include <zlib.h>

static inline int czlib_deflate_init(z_streamp stream, int level) {
    return deflateInit(stream, level);
}

static inline int czlib_inflate_init(z_streamp stream) {
    return inflateInit(stream);
}
#endif
