pragma solidity ^0.4.24;

// The check itself underflows: balance - amount is never negative for a uint.
contract Allowance {
    mapping(address => uint256) public balances;

    function deposit() public payable {
        balances[msg.sender] += msg.value;
    }

    function withdraw(uint256 amount) public {
        require(balances[msg.sender] - amount >= 0); // expect: arithmetic
        balances[msg.sender] -= amount;
        msg.sender.transfer(amount);
    }
}
