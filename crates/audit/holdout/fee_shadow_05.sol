pragma solidity ^0.5.0;

contract FeeBase {
    uint256 public fee = 1;

    function feeFor(uint256 amount) public view returns (uint256) {
        return amount * fee / 100;
    }
}

contract FeeChild is FeeBase {
    uint256 public fee = 2; // expect: other

    function childFee(uint256 amount) public view returns (uint256) {
        return amount * fee / 100;
    }
}
