/* log.c - see log.h. (being written) */
#include "config.h"
#include "log.h"
