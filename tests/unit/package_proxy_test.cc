#include <gtest/gtest.h>
// placeholder: replaced by this work
