/* The public header must compile as strict C99 on its own. */
#include <intdim.h>

int main(void)
{
    return intdim_version() == INTDIM_VERSION_NUMBER ? 0 : 1;
}
