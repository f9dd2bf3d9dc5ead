/* tls.c - see tls.h. (being written) */
#include "config.h"
#include "tls.h"
