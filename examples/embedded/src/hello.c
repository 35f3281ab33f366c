/* The program the parent build compiles and acigen packs into an image. */
#include <stdio.h>

int main(int argc, char **argv)
{
    printf("hello from %s\n", argc > 1 ? argv[1] : "an embedded build");
    return 0;
}
