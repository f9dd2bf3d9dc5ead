/* relay_config.c - see relay_config.h. (being written) */
#include "config.h"
#include "relay_config.h"
