pragma solidity ^0.7.6;

// Dividing first truncates the fee to zero for small amounts.
contract FeeSplitter {
    uint256 public constant FEE_BPS = 30;
    mapping(address => uint256) public owed;

    function quote(uint256 amount) external pure returns (uint256) {
        return amount / 10000 * FEE_BPS; // expect: arithmetic
    }

    function pay(address to) external payable {
        owed[to] += msg.value - msg.value / 10000 * FEE_BPS; // expect: arithmetic
    }

    function withdraw() external {
        uint256 amount = owed[msg.sender];
        owed[msg.sender] = 0;
        msg.sender.transfer(amount);
    }
}
