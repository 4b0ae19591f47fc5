pragma solidity ^0.5.0;

contract Config {
    uint256 public limit = 10;
}

contract Service is Config {
    uint256 public limit = 20; // expect: other

    function within(uint256 v) public view returns (bool) {
        return v <= limit;
    }
}
