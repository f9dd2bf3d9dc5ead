/* acl.c - see acl.h. (being written) */
#include "config.h"
#include "acl.h"
