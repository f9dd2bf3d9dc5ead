/* loop.c - see loop.h. (being written) */
#include "config.h"
#include "loop.h"
