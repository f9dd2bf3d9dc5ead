/* buf.c - see buf.h. (being written) */
#include "config.h"
#include "buf.h"
