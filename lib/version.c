/* Run-time version, so a program can check the library it loaded against its header. */
#include "internal.h"

INTDIM_API unsigned intdim_version(void)
{
    return INTDIM_VERSION_NUMBER;
}

INTDIM_API const char *intdim_version_string(void)
{
    return INTDIM_VERSION_STRING;
}
