/* net.c - see net.h. (being written) */
#include "config.h"
#include "net.h"
