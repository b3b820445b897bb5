/* placeholder: implemented in a later commit */
#include "internal.h"
