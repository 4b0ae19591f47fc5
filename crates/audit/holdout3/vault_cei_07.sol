pragma solidity ^0.7.6;

contract CeiVault {
    mapping(address => uint256) public balance;
    uint256 public totalDeposits;

    function deposit() external payable {
        balance[msg.sender] += msg.value;
        totalDeposits += msg.value;
    }

    function withdraw(uint256 amount) external {
        require(balance[msg.sender] >= amount, "funds");
        balance[msg.sender] -= amount;
        totalDeposits -= amount;
        (bool ok, ) = msg.sender.call{value: amount}("");
        require(ok, "send");
    }
}
