// Uses an installed encore through its public include path: makes two tensors, multiplies
// them with raw::matmul and checks the product. Exit status 0 means the install works.
#include <encore/tensor/tensor.h>

#include <iostream>
#include <vector>

int main() {
  using encore::Tensor;
  Tensor a = encore::from_vector<float>({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor b = encore::from_vector<float>({7, 8, 9, 10, 11, 12}, {3, 2});
  Tensor c = encore::raw::matmul(a, b);  // (2, 3) @ (3, 2) -> (2, 2)
  std::cout << "a @ b =\n" << c << "\n";

  const std::vector<float> want = {58, 64, 139, 154};
  if (c.shape() != encore::Shape{2, 2} || c.to_vector<float>() != want) {
    std::cerr << "install test: wrong product, shape " << c.shape() << "\n";
    return 1;
  }
  std::cout << "install test: ok\n";
  return 0;
}
