pragma solidity ^0.4.10;

contract OldBank {
    mapping(address => uint) userBalances;

    function getBalance(address u) constant returns (uint) {
        return userBalances[u];
    }

    function addToBalance() payable {
        userBalances[msg.sender] = userBalances[msg.sender] + msg.value;
    }

    function withdrawBalance() {
        uint amountToWithdraw = userBalances[msg.sender];
        if (!(msg.sender.call.value(amountToWithdraw)())) { throw; } // expect: reentrancy
        userBalances[msg.sender] = 0;
    }
}
