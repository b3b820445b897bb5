// The public header must be usable from C++ without warnings or name mangling.
#include <intdim.h>

int main()
{
    int64_t v = 0;
    return intdim_constant("INTDIM_OK", &v) == INTDIM_OK && intdim_version() == INTDIM_VERSION_NUMBER ? 0 : 1;
}
