pragma solidity ^0.7.6;

// Multiplying first keeps the precision.
contract FeeSplitter {
    uint256 public constant FEE_BPS = 30;
    mapping(address => uint256) public owed;

    function quote(uint256 amount) external pure returns (uint256) {
        return amount * FEE_BPS / 10000;
    }

    function pay(address to) external payable {
        owed[to] += msg.value - msg.value * FEE_BPS / 10000;
    }

    function withdraw() external {
        uint256 amount = owed[msg.sender];
        owed[msg.sender] = 0;
        msg.sender.transfer(amount);
    }
}
